"""The user's data directory: what a node keeps between runs (:mod:`strangers.home`).

The class and its rules live in :mod:`strangers.home`, outside the node
package, so that the executable can read the data directory before it
imports the node; this module is the name the node's modules use.
"""

from __future__ import annotations

from strangers.home import ENV_HOME as ENV_HOME
from strangers.home import MAX_FILE_BYTES as MAX_FILE_BYTES
from strangers.home import DataDir as DataDir
from strangers.home import default_home as default_home
from strangers.home import write_private as write_private
