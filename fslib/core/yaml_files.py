"""Reading a YAML file that a user wrote or received: UTF-8 only, and no alias bombs.

PyYAML's safe loader shares the node of an anchor between its aliases while it composes a document, but builds a
separate value for every alias (and copies every `<<` merge), so nine levels of anchors, each holding nine aliases
of the one before, make 9^9 values and hang the loader. `load_yaml` composes the document first, counts the values
it would build (each shared node once per use, in time linear in the nodes written) and refuses more than
MAX_VALUES before building any. Parameter files hold a few hundred values.
"""

from __future__ import annotations

from pathlib import Path

import yaml

MAX_VALUES = 100_000


class YamlFileError(ValueError):
    """A YAML file that cannot be read; the message names the file (and the line where there is one)."""


def load_yaml(path: Path | str):
    """The document in `path`, loaded as yaml.safe_load does; YamlFileError naming the file (and line) for a file
    that is not UTF-8, not YAML, or would expand to more than MAX_VALUES values. FileNotFoundError as open."""
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise YamlFileError(f"{path}: line {line}: not UTF-8 text (byte 0x{data[error.start]:02x}); save the file "
                            f"as UTF-8") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        values = _expanded_size(node, {})
        if values > MAX_VALUES:
            raise YamlFileError(f"{path}: its anchors and aliases expand to more than {MAX_VALUES:,} values "
                                f"(an alias bomb?); write the values out or use fewer nested aliases")
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        raise YamlFileError(f"{path}: not valid YAML: {error}") from None
    except RecursionError:
        raise YamlFileError(f"{path}: nested too deeply to read") from None
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values constructing `node` builds: 1 for a scalar, 1 plus its items' for a collection, an alias
    counted in full each time it is used (memoised per node, capped just above MAX_VALUES)."""
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = MAX_VALUES + 1  # a node inside itself (a recursive alias): too large, whatever it holds
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    else:
        children = []
    size = 1
    for child in children:
        size = min(size + _expanded_size(child, sizes), MAX_VALUES + 1)
    sizes[id(node)] = size
    return size
