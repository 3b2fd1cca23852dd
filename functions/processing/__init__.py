"""The `processing` service (ARCHITECTURE §2). Its functions are registered on `bp`."""

import azure.functions as func

bp = func.Blueprint()
