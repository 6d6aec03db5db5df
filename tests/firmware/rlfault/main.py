from epx import app
import faults
from relay import safe, service

app.run(lambda: faults.setup(service), safe_setup=safe.setup)
