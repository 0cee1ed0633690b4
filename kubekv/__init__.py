"""KubeKV's product layer, above the lab packages: the `kubekv` command line and its demo.

Usage:
    kubekv demo --help            # the console script (kubekv/cli.py)
    python -m kubekv.cli demo     # the same, without installing the script

It imports the lab packages (raft1, rsm, kvraft1, tester, porcupine); they never import it.
"""
