"""`psycopref release`: every artifact of a release published together under one version tag."""
