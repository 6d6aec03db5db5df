from epx import app

app.run("scale_manager.service")
