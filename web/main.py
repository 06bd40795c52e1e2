"""The app uvicorn serves: built from NUMBRA_* settings."""

from settings import get_settings
from web.app import create_app
from web.logging import configure_logging

settings = get_settings()
# `numbra serve --workers N` starts each worker as a new interpreter that imports this.
configure_logging(settings.log_level, settings.log_format)
app = create_app(settings)
