"""Local token counts: which tokenizer counts a model (``encodings``), a request's prompt
reduced to countable pieces (``prompt``), and batch counting onto stage rows (``count``)."""
