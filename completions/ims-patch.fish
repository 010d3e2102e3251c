complete --keep-order --exclusive --command ims-patch --arguments "(COMPLETE=fish ims-patch -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
