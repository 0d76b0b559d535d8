"""urwid widgets of the terminal UI. They render state and call actions; they never touch sockets."""
