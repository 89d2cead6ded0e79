from optimizer.cli import app

app(prog_name="python -m optimizer")
