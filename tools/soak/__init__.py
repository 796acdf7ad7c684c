"""The long-life instrument: a corpus being edited for a long time, measured as it goes."""
