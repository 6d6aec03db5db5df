from epx import app
from relay import safe

app.run("relay.service", safe_setup=safe.setup)
