"""One date format everywhere a date is shown without its own (the admin's lists and fields
included): ISO order, 24 h, in UTC (TIME_ZONE), so staff never compare "Dec. 6, 2026, 9:27 p.m."
with "2026-12-06 21:27"."""

DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i"
DATETIME_FORMAT = "Y-m-d H:i T"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
