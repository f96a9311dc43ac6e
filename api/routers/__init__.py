"""One router per resource; each endpoint parses, calls one service function, answers."""
