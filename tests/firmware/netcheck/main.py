from epx import app

app.run("netapp")
