from epx import app

app.run("bare.service")
