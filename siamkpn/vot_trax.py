"""The TraX server's former module path, kept because trackers.ini files in users' VOT workspaces name it
(``command = siamkpn.vot_trax``): ``python -m siamkpn.vot_trax`` runs ``siamkpn.cli.vot_trax``."""
if __name__ == "__main__":
    from siamkpn.cli.vot_trax import main

    raise SystemExit(main())
