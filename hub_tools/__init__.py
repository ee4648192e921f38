"""psycopref: build PsyCoPref preference data, reward models and policies, Hub-native."""

__version__ = "0.1.0"
