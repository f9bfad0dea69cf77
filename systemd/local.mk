# systemd/: the service unit.
systemdsystemunit_DATA = systemd/vtuned.service
EXTRA_DIST += systemd/vtuned.service
