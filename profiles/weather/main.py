from epx import app

app.run("weather.service")
