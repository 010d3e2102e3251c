complete --keep-order --exclusive --command ims-patch --arguments "(IMS_PATCH_COMPLETE=fish ims-patch -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
