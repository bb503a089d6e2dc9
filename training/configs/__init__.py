"""Packaged training configurations (``nextbest train --config default|fast|hillstrom``)."""
