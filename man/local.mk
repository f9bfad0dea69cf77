# man/: vtuned(8), vtunectl(1), vtuned.yaml(5).
dist_man_MANS += man/vtuned.8 man/vtunectl.1 man/vtuned.yaml.5
