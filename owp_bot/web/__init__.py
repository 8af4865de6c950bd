"""The dashboard's server side: the event stream (stream.py) and the built single-page app (pages.py)."""
