from epx import app

app.run("energy.service")
