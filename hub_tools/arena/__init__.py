"""The comparison app behind the Space (the deployable folder is the repository's `spaces/`): policies side
by side on one client speech, a blind A/B mode collecting votes as preference data, crisis banners, and
`psycopref space run|deploy`. The app is `arena.app`; the engine (parallel streaming, reward scores) is
`arena.compare`, testable without any UI."""
