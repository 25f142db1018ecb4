"""Container IDs and names, by Docker's rules: 64 hex digits; names match
`[a-zA-Z0-9][a-zA-Z0-9_.-]+` (a leading "/" allowed), unique; a name not given is made up
as Docker's namesgenerator does: "<adjective>_<surname>"."""

from __future__ import annotations

import os
import random
import re

from dockyard.engine.errors import InvalidParameter

VALID_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

LEFT = ("admiring", "adoring", "affectionate", "agitated", "amazing", "angry", "awesome",
        "beautiful", "blissful", "bold", "brave", "busy", "charming", "clever", "compassionate",
        "competent", "confident", "cool", "cranky", "crazy", "dazzling", "determined",
        "distracted", "dreamy", "eager", "ecstatic", "elastic", "elated", "elegant", "eloquent",
        "epic", "exciting", "fervent", "festive", "flamboyant", "focused", "friendly",
        "frosty", "funny", "gallant", "gifted", "goofy", "gracious", "great", "happy",
        "hardcore", "heuristic", "hopeful", "hungry", "infallible", "inspiring", "intelligent",
        "interesting", "jolly", "jovial", "keen", "kind", "laughing", "loving", "lucid",
        "magical", "modest", "musing", "mystifying", "naughty", "nervous", "nice", "nifty",
        "nostalgic", "objective", "optimistic", "peaceful", "pedantic", "pensive", "practical",
        "priceless", "quirky", "quizzical", "relaxed", "reverent", "romantic", "sad", "serene",
        "sharp", "silly", "sleepy", "stoic", "strange", "stupefied", "suspicious", "sweet",
        "tender", "thirsty", "trusting", "unruffled", "upbeat", "vibrant", "vigilant",
        "vigorous", "wizardly", "wonderful", "xenodochial", "youthful", "zealous", "zen")
RIGHT = ("agnesi", "albattani", "allen", "archimedes", "babbage", "banach", "bardeen", "bell",
         "blackwell", "bohr", "booth", "borg", "bose", "brahmagupta", "brattain", "brown",
         "cannon", "carson", "cerf", "chandrasekhar", "cohen", "curie", "darwin", "davinci",
         "diffie", "dijkstra", "einstein", "elion", "engelbart", "euclid", "euler", "faraday",
         "fermat", "fermi", "feynman", "franklin", "galileo", "gates", "goldberg", "goodall",
         "hamilton", "hawking", "heisenberg", "hellman", "hertz", "hodgkin", "hofstadter",
         "hopper", "hypatia", "jackson", "jang", "jennings", "johnson", "kalam", "keller",
         "kepler", "knuth", "kowalevski", "lamarr", "lamport", "leakey", "lovelace", "lumiere",
         "mayer", "mccarthy", "mclean", "meitner", "mendel", "merkle", "montalcini", "moore",
         "morse", "newton", "nobel", "noether", "pare", "pascal", "pasteur", "perlman", "pike",
         "poincare", "ptolemy", "raman", "ritchie", "rosalind", "sammet", "shannon", "shaw",
         "shirley", "sinoussi", "stonebraker", "swanson", "tesla", "thompson", "torvalds",
         "turing", "varahamihira", "visvesvaraya", "wescoff", "wiles", "williams", "wilson",
         "wing", "wozniak", "wright", "yalow", "yonath")


def new_id() -> str:
    return os.urandom(32).hex()


def check_name(name: str) -> str:
    """The name without its "/"; InvalidParameter in Docker's words when it is not valid."""
    if not VALID_NAME.match(name):
        raise InvalidParameter(f"Invalid container name ({name}), only "
                               f"[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name.lstrip("/")


def random_name(retry: int = 0) -> str:
    name = f"{random.choice(LEFT)}_{random.choice(RIGHT)}"
    if name == "boring_wozniak":  # Steve Wozniak is not boring (Docker's rule)
        return random_name(retry)
    return f"{name}{random.randint(0, 9)}" if retry else name
