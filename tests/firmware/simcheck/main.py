import simcheck

simcheck.run()
