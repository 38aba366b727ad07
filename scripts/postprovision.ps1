# azd postprovision hook (PowerShell): put the app's secrets into Key Vault.
# Same contract as postprovision.sh: generated secrets (peppers, master keys) are created from
# the OS CSPRNG only when absent and never overwritten; operator-supplied secrets are copied from
# the azd environment when set. Values go through a private temp file, never the command line.
$ErrorActionPreference = 'Stop'

if (-not $env:AZURE_KEY_VAULT_NAME) { throw 'run through azd (azd provision / azd up)' }
if (-not (Get-Command az -ErrorAction SilentlyContinue)) { throw 'postprovision: the Azure CLI (az) is required' }

$vault = $env:AZURE_KEY_VAULT_NAME
$tmp = New-TemporaryFile
$changed = $false

function Test-Secret([string]$Name) {
    # A failing az call is an answer here (not found / not yet authorised), not a script error.
    $ErrorActionPreference = 'Continue'
    for ($attempt = 1; ; $attempt++) {
        $out = az keyvault secret show --vault-name $vault --name $Name --query id -o tsv 2>&1
        if ($LASTEXITCODE -eq 0) { return $true }
        if ("$out" -match 'SecretNotFound|was not found') { return $false }
        if ($attempt -ge 12) { throw "postprovision: cannot read Key Vault secret ${Name}: $out" }
        Write-Host "postprovision: waiting for Key Vault access (role assignment propagation), attempt $attempt"
        Start-Sleep -Seconds 15
    }
}

function Set-Secret([string]$Name, [string]$Value) {
    [System.IO.File]::WriteAllText($tmp.FullName, $Value)
    az keyvault secret set --vault-name $vault --name $Name --file $tmp.FullName --encoding utf-8 --output none
    if ($LASTEXITCODE -ne 0) { throw "postprovision: could not store $Name" }
    [System.IO.File]::WriteAllText($tmp.FullName, '')
    $script:changed = $true
}

try {
    foreach ($entry in ("$env:KEY_VAULT_GENERATED_SECRETS" -split ' ' | Where-Object { $_ })) {
        $name, $bytes = $entry -split ':'
        if (Test-Secret $name) {
            Write-Host "postprovision: $name exists, kept"
        } else {
            $buffer = [byte[]]::new([int]$bytes)
            [System.Security.Cryptography.RandomNumberGenerator]::Create().GetBytes($buffer)
            Set-Secret $name ([Convert]::ToBase64String($buffer))
            Write-Host "postprovision: $name generated ($bytes random bytes)"
        }
    }

    foreach ($entry in ("$env:KEY_VAULT_SUPPLIED_SECRETS" -split ' ' | Where-Object { $_ })) {
        $setting, $name = $entry -split ':'
        $value = [Environment]::GetEnvironmentVariable($setting)
        if ($value) {
            Set-Secret $name $value
            Write-Host "postprovision: $name set from the azd environment ($setting)"
        } elseif (-not (Test-Secret $name)) {
            Write-Host "postprovision: $name is not set; features needing $setting stay off until you run:"
            Write-Host "  azd env set $setting '<value>'; azd provision   (or: az keyvault secret set --vault-name $vault --name $name --file <file>)"
        }
    }
} finally {
    Remove-Item $tmp.FullName -Force -ErrorAction SilentlyContinue
}

# Key Vault references are resolved when the app (re)starts: pick up new values now.
if ($changed -and $env:AZURE_FUNCTION_APP_NAME) {
    az functionapp restart --resource-group $env:RESOURCE_GROUP --name $env:AZURE_FUNCTION_APP_NAME --output none
    if ($LASTEXITCODE -ne 0) { Write-Host 'postprovision: restart failed; new secrets reach the app at its next restart (or within 24 h)' }
}
