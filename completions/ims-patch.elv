
set edit:completion:arg-completer[ims-patch] = { |@words|
    var index = (count $words)
    set index = (- $index 1)

    put (env _CLAP_IFS="\n" _CLAP_COMPLETE_INDEX=(to-string $index) IMS_PATCH_COMPLETE="elvish" ims-patch -- $@words) | to-lines
}

