from epx import app

app.run("switch.service")
