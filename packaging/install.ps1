# Install obs-faceswap for OBS Studio on Windows.
#
#   powershell -ExecutionPolicy Bypass -File packaging\install.ps1 [-Prefix DIR] [-Cpu|-Cuda|-DirectML] [-Models DIR]
#
# Creates a Python environment for the engine (OBS's own Python needs nothing installed),
# installs obs-faceswap from this checkout into it, fetches the default models that have a
# public download, records the engine interpreter for the OBS script, and prints the path of
# the script to add in OBS -> Tools -> Scripts. OBS itself must be pointed at a Python 3.10-3.12
# under Tools -> Scripts -> Python Settings (it only runs the small script; no packages needed).
param(
    [string]$Prefix = "$env:LOCALAPPDATA\obs-faceswap",
    [switch]$Cpu,
    [switch]$Cuda,
    [switch]$DirectML,
    [string]$Models = ""
)
$ErrorActionPreference = "Stop"
$src = Split-Path -Parent $PSScriptRoot
$py = if ($env:PYTHON) { $env:PYTHON } else { "py" }
$pyArgs = if ($py -eq "py") { @("-3") } else { @() }

& $py @pyArgs -c "import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 12)))"
if ($LASTEXITCODE -ne 0) { throw "needs Python 3.10-3.12; set `$env:PYTHON to its python.exe" }

$extra = if ($Cuda) { "cuda" } elseif ($DirectML) { "directml" } elseif ($Cpu) { "cpu" } elseif (Get-Command nvidia-smi -ErrorAction SilentlyContinue) { "cuda" } else { "directml" }
Write-Host "obs-faceswap: installing into $Prefix\venv (onnxruntime: $extra)"
& $py @pyArgs -m venv "$Prefix\venv"
$vpy = "$Prefix\venv\Scripts\python.exe"
& $vpy -m pip install -q --upgrade pip
# In a release bundle the wheel sits beside this script; in a checkout, install the checkout.
$wheel = Get-ChildItem -Path $PSScriptRoot -Filter "obs_faceswap-*.whl" -ErrorAction SilentlyContinue | Select-Object -First 1
$target = if ($wheel) { $wheel.FullName } else { $src }
& $vpy -m pip install -q "$target[$extra]"
if (Test-Path (Join-Path $PSScriptRoot "models")) {
    $cache = & $vpy -c "from obs_faceswap.models import default_cache_dir; print(default_cache_dir() / 'models')"
    New-Item -ItemType Directory -Force -Path $cache | Out-Null
    Copy-Item (Join-Path $PSScriptRoot "models\*.onnx") $cache
}
if ($LASTEXITCODE -ne 0) { throw "pip install failed" }

$fetch = @("models", "fetch")
if ($Models) { $fetch += @("--models", $Models) }
& "$Prefix\venv\Scripts\obs-faceswap.exe" @fetch
if ($LASTEXITCODE -ne 0) {
    Write-Warning "some models could not be downloaded; set 'Models directory' in the filter (obs-faceswap models list)"
}

$script = & $vpy -c "import pathlib, obs_faceswap.obs as o; print(pathlib.Path(o.__file__).parent / 'obs_faceswap_filter.py')"
Set-Content -Path (Join-Path (Split-Path $script) "engine_python.txt") -Value $vpy -Encoding UTF8
# Add the script to OBS's current scene collection (close OBS first; uninstall-obs undoes it).
& "$Prefix\venv\Scripts\obs-faceswap.exe" install-obs
if ($LASTEXITCODE -eq 0) {
    Write-Host "Done. Start OBS, right-click your camera -> Filters -> + -> Face Swap."
    & "$Prefix\venv\Scripts\obs-faceswap.exe" doctor
    exit 0
}

Write-Host ""
Write-Host "Done. In OBS Studio: Tools -> Scripts -> '+' and choose"
Write-Host "  $script"
Write-Host "then add the 'Face Swap' filter to your camera (right-click the source -> Filters)."
