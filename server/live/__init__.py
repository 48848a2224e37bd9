"""Live changes: the change listener, who is subscribed to what, the pushes, cursors, an object's history."""
