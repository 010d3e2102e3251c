
Register-ArgumentCompleter -Native -CommandName ims-patch -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $prev = $env:IMS_PATCH_COMPLETE;
    $env:IMS_PATCH_COMPLETE = "powershell";

    $args = $commandAst.Extent.Text
    $args = $args.Substring(0, [math]::Min($cursorPosition, $args.Length));
    if ($wordToComplete -eq "") {
        $args += " ''";
    }

    $results = Invoke-Expression @"
& ims-patch -- $args
"@;
    if ($null -eq $prev) {
        Remove-Item Env:\IMS_PATCH_COMPLETE;
    } else {
        $env:IMS_PATCH_COMPLETE = $prev;
    }
    $results | ForEach-Object {
        $split = $_.Split("`t");
        $cmd = $split[0];

        if ($split.Length -eq 2) {
            $help = $split[1];
        }
        else {
            $help = $split[0];
        }

        [System.Management.Automation.CompletionResult]::new($cmd, $cmd, 'ParameterValue', $help)
    }
};
        
