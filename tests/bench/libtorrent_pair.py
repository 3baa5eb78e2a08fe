"""One file between two libtorrent sessions on loopback, plaintext, no DHT or peer
discovery: the BitTorrent reference for `bench-transfer`. Needs Debian's
python3-libtorrent. Prints `seconds cpu_seconds` of the transfer (both sessions run in
this process, so the CPU time is seeder plus fetcher).

usage: python3 libtorrent_pair.py FILE WORK_DIR
"""

import os
import resource
import sys
import time

import libtorrent as lt


def session():
    return lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "out_enc_policy": lt.enc_policy.disabled,
        "in_enc_policy": lt.enc_policy.disabled,
        "alert_mask": 0,
        # TCP, as the other transfers: uTP's delay-based congestion control backs off
        # on loopback and makes the transfer wait rather than work.
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
    })


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main():
    source, work = sys.argv[1], sys.argv[2]
    files = lt.file_storage()
    lt.add_files(files, source)
    torrent = lt.create_torrent(files)
    lt.set_piece_hashes(torrent, os.path.dirname(source))
    info = lt.torrent_info(torrent.generate())

    seeder = session()
    seeding = seeder.add_torrent({
        "ti": info,
        "save_path": os.path.dirname(source),
        "flags": lt.torrent_flags.seed_mode,
    })
    fetcher = session()
    fetching = fetcher.add_torrent({"ti": info, "save_path": work})
    while not seeding.status().is_seeding:
        time.sleep(0.01)

    cpu_before = cpu_seconds()
    started = time.monotonic()
    fetching.connect_peer(("127.0.0.1", seeder.listen_port()))
    while not fetching.status().is_seeding:
        time.sleep(0.005)
    print(f"{time.monotonic() - started:.3f} {cpu_seconds() - cpu_before:.3f}")


if __name__ == "__main__":
    main()
