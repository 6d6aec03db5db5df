from epx import app

app.run("relay.service")
