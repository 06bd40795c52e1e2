"""The app uvicorn serves: built from NUMBRA_* settings."""

from settings import get_settings
from web.app import create_app

app = create_app(get_settings())
