from epx import app

app.run("h2o.service")
