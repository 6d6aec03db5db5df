from epx import app

app.run("cfault.service")
