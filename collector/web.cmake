# web.cmake -- the dashboard compiled into the collector: web/'s npm
# dependencies installed into the build folder (never into web/), then
# every file under web/src/ plus uPlot's dist files turned into
# web_assets.c (tools/embed.c) for collector/web.c. Nothing generated is
# committed. Included by collector/CMakeLists.txt; sets WEB_ASSETS_C.
find_program(NPM npm)
if(NOT NPM)
    message(FATAL_ERROR "npm not found: the dashboard (web/) needs it to "
                        "build; scripts/deps.sh installs it")
endif()

set(WEB_DIR ${CMAKE_SOURCE_DIR}/web)
set(WEB_NPM ${CMAKE_BINARY_DIR}/web-npm)
set(WEB_UPLOT ${WEB_NPM}/node_modules/uplot/dist)
file(MAKE_DIRECTORY ${WEB_NPM})

# npm ci only when package.json or the lock changes: the stamp, not the
# installed files (npm gives them old times), tells the build it ran.
add_custom_command(
    OUTPUT ${WEB_NPM}/npm-ci.stamp
    BYPRODUCTS ${WEB_UPLOT}/uPlot.esm.js ${WEB_UPLOT}/uPlot.min.css
    COMMAND ${CMAKE_COMMAND} -E copy ${WEB_DIR}/package.json
            ${WEB_DIR}/package-lock.json ${WEB_NPM}
    COMMAND ${NPM} ci --no-audit --no-fund --loglevel=error
    COMMAND ${CMAKE_COMMAND} -E touch ${WEB_NPM}/npm-ci.stamp
    DEPENDS ${WEB_DIR}/package.json ${WEB_DIR}/package-lock.json
    WORKING_DIRECTORY ${WEB_NPM}
    COMMENT "npm ci: web/'s dependencies, in ${WEB_NPM}"
    VERBATIM)

# Every file under web/src/ is an asset (CONFIGURE_DEPENDS: a new page is
# picked up by the next build), except editors' hidden and backup files.
file(GLOB_RECURSE WEB_FILES CONFIGURE_DEPENDS RELATIVE ${WEB_DIR}/src
     ${WEB_DIR}/src/*)
list(FILTER WEB_FILES EXCLUDE REGEX "(^|/)\\.|~$")
set(WEB_ARGS vendor/uPlot.esm.js=${WEB_UPLOT}/uPlot.esm.js
             vendor/uPlot.min.css=${WEB_UPLOT}/uPlot.min.css)
set(WEB_DEPS)
foreach(f ${WEB_FILES})
    list(APPEND WEB_ARGS ${f}=${WEB_DIR}/src/${f})
    list(APPEND WEB_DEPS ${WEB_DIR}/src/${f})
endforeach()

set(WEB_ASSETS_C ${CMAKE_CURRENT_BINARY_DIR}/web_assets.c)
add_custom_command(
    OUTPUT ${WEB_ASSETS_C}
    COMMAND sextant-embed ${WEB_ASSETS_C} ${WEB_ARGS}
    DEPENDS sextant-embed ${WEB_DEPS} ${WEB_NPM}/npm-ci.stamp
    COMMENT "embedding the dashboard (web/src, uPlot) into web_assets.c"
    VERBATIM)

# Same input, same bytes, whatever the order the files are named in: the
# tool run again on them in reverse order writes the build's table again.
set(WEB_ARGS_REV ${WEB_ARGS})
list(REVERSE WEB_ARGS_REV)
add_test(NAME collector_web_embed_deterministic
         COMMAND bash -c "\"$1\" \"$2\" \"\${@:3}\" && cmp \"$2\" \"$0\""
                 ${WEB_ASSETS_C} $<TARGET_FILE:sextant-embed>
                 ${CMAKE_CURRENT_BINARY_DIR}/web_assets_again.c
                 ${WEB_ARGS_REV})
