from vlbias.cli import run

run()
