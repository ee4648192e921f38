"""The comparison Space: policies side by side on one client speech, a blind A/B mode collecting votes as
preference data, crisis banners, and `psycopref space run|deploy`. The app is `space.app`; the engine
(parallel streaming, reward scores) is `space.compare`, testable without any UI."""
