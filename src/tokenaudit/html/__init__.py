"""The HTML report: one self-contained page (inline CSS and SVG charts, no network).

``data`` gathers aggregated figures, ``charts`` draws them with matplotlib as SVG text,
``page`` lays out the sections. ``tokenaudit.api.html_page`` builds the page from a database.
"""
