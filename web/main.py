"""The app uvicorn serves: built from NUMBRA_* settings."""

import gc

from settings import get_settings
from web.app import create_app
from web.logging import configure_logging

settings = get_settings()
# `numbra serve --workers N` starts each worker as a new interpreter that imports this.
configure_logging(settings.log_level, settings.log_format)
app = create_app(settings)
# What the process has made so far (the schema, SQLAlchemy's and strawberry's own
# structures: ~160,000 objects) lives as long as it does: out of the garbage collector's
# sight, a full collection no longer walks it (~50 ms each, every few hundred requests
# under load).
gc.freeze()
