from epx import app
import faults
from relay import service

app.run(lambda: faults.setup(service))
