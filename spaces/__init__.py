"""The deployable comparison Space (app.py, requirements.txt, README.md, configs), shipped inside the wheel as
`hub_tools.spaces` so `psycopref space run|deploy` work from any install. This file is not uploaded."""
