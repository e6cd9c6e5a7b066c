"""Seeded mutations of assembly sources: deleted, duplicated and swapped characters and lines."""

import random


def mutate(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        if op < 3 and lines:  # character edits inside one line
            i = rng.randrange(len(lines))
            s = lines[i]
            j = rng.randrange(len(s) + 1)
            if op == 0:
                s = s[:j] + s[j + 1:]
            elif op == 1:
                s = s[:j] + s[j:j + 1] * 2 + s[j + 1:]
            elif len(s) > 1:
                k = rng.randrange(len(s))
                a, b = sorted((min(j, len(s) - 1), k))
                s = s[:a] + s[b] + s[a + 1:b] + s[a] + s[b + 1:] if a != b else s
            lines[i] = s
        elif op == 3 and lines:
            del lines[rng.randrange(len(lines))]
        elif op == 4 and lines:
            i = rng.randrange(len(lines))
            lines.insert(i, lines[i])
        elif op == 5 and len(lines) > 1:
            i, k = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[k] = lines[k], lines[i]
        else:  # a random printable or control character somewhere
            i = rng.randrange(len(lines)) if lines else 0
            ch = chr(rng.choice([rng.randrange(32, 127), rng.randrange(0, 32),
                                 rng.randrange(128, 0x3000)]))
            if lines:
                s = lines[i]
                j = rng.randrange(len(s) + 1)
                lines[i] = s[:j] + ch + s[j:]
    return "\n".join(lines)
