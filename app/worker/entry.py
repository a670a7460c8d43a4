"""What `referral worker` runs in each dramatiq worker process (`dramatiq app.worker.entry`)."""

from app.config import get_settings
from app.logs import configure_logging
from app.worker.broker import Scheduler, configure

configure_logging(get_settings().log_level)
broker = configure()
broker.add_middleware(Scheduler())
