from epx import app
import faults
from switch import service

app.run(lambda: faults.setup(service))
