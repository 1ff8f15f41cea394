"""The processes of normandy 0.3's sample project, as a package of registered processes."""
