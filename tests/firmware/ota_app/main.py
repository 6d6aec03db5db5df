from epx import app

app.run("otaapp")
