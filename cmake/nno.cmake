# nno_add_package(NAME SOURCES src... [CORE] [OPTIONAL] [NOINSTALL]
#                 [OUTPUT_DIR dir] [MANIFEST package.json] [LIBS libs...])
#
# Builds a plugin shared object against plugin-api only, with hidden
# visibility and --no-undefined (its one export is the descriptor), and
# places it beside a copy of its package.json in OUTPUT_DIR/NAME/, with
# its migrations/ folder (SQL migrations of its sql resources) and its ui/
# folder (UI assets the console serves) when the package has them.
# Feature packages default to ${NNO_OUT}/packages, core plugins to the
# plugin directory. A core plugin is required by core_plugins' default
# unless OPTIONAL (it is built and installed all the same).
function(nno_add_package name)
  cmake_parse_arguments(P "CORE;OPTIONAL;NOINSTALL" "OUTPUT_DIR;MANIFEST" "SOURCES;LIBS" ${ARGN})
  if(NOT P_MANIFEST)
    set(P_MANIFEST ${CMAKE_CURRENT_SOURCE_DIR}/package.json)
  endif()
  if(NOT P_OUTPUT_DIR)
    if(P_CORE)
      set(P_OUTPUT_DIR ${NNO_PLUGIN_OUT})
    else()
      set(P_OUTPUT_DIR ${NNO_OUT}/packages)
    endif()
  endif()
  set(dir ${P_OUTPUT_DIR}/${name})
  get_filename_component(src ${P_MANIFEST} DIRECTORY)
  set(migrations)
  if(IS_DIRECTORY ${src}/migrations)
    file(GLOB_RECURSE migrations CONFIGURE_DEPENDS ${src}/migrations/*)
  endif()
  set(ui)
  if(IS_DIRECTORY ${src}/ui)
    file(GLOB_RECURSE ui CONFIGURE_DEPENDS ${src}/ui/*)
  endif()
  add_library(pkg_${name} MODULE ${P_SOURCES})
  target_link_libraries(pkg_${name} PRIVATE nno_plugin_api ${P_LIBS})
  set_target_properties(pkg_${name} PROPERTIES
    OUTPUT_NAME ${name} PREFIX "lib" C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY ${dir}
    # A changed manifest relinks, so the POST_BUILD copy below runs again.
    LINK_DEPENDS "${P_MANIFEST};${migrations};${ui}")
  if(NOT NNO_SANITIZE)
    target_link_options(pkg_${name} PRIVATE -Wl,--no-undefined)
  endif()
  add_custom_command(TARGET pkg_${name} POST_BUILD
    COMMAND ${CMAKE_COMMAND} -E copy_if_different ${P_MANIFEST} ${dir}/package.json)
  if(migrations)
    add_custom_command(TARGET pkg_${name} POST_BUILD
      COMMAND ${CMAKE_COMMAND} -E copy_directory ${src}/migrations ${dir}/migrations)
  endif()
  if(ui)
    # Copied whole again, so a file removed from ui/ leaves no copy behind.
    add_custom_command(TARGET pkg_${name} POST_BUILD
      COMMAND ${CMAKE_COMMAND} -E remove_directory ${dir}/ui
      COMMAND ${CMAKE_COMMAND} -E copy_directory ${src}/ui ${dir}/ui)
  endif()
  set_property(TARGET pkg_${name} PROPERTY NNO_PACKAGE_DIR ${dir})
  set_property(TARGET pkg_${name} PROPERTY NNO_PACKAGE_UI "${ui}")
  set_property(TARGET pkg_${name} PROPERTY NNO_PACKAGE_MIGRATIONS "${migrations}")
  if(P_OPTIONAL)
    set_property(TARGET pkg_${name} PROPERTY NNO_PACKAGE_OPTIONAL ON)
  endif()
  if(P_CORE AND NOT P_NOINSTALL)
    install(TARGETS pkg_${name} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/nno/plugins/${name})
    install(FILES ${P_MANIFEST} DESTINATION ${CMAKE_INSTALL_LIBDIR}/nno/plugins/${name})
  endif()
endfunction()

# nno_add_stack(MANIFEST stack.json PACKAGES name... [OUTPUT_DIR dir]
#               [TARGET name] [NOINSTALL])
#
# Assembles a stack in the layout of an installed stack archive:
#   OUTPUT_DIR/{id}/{version}/stack.json
#   OUTPUT_DIR/{id}/{version}/packages/{name}/{package.json,lib{name}.so}
#   OUTPUT_DIR/{id}/{version}/packages/{name}/migrations/... (when it has any)
#   OUTPUT_DIR/{id}/{version}/packages/{name}/ui/... (when it has any)
# and, for a first-party stack (installed: not NOINSTALL), packs it with the
# built nno into ${NNO_OUT}/stacks/{id}-{version}.tar.gz (nno stack pack).
function(nno_add_stack)
  cmake_parse_arguments(S "NOINSTALL" "MANIFEST;OUTPUT_DIR;TARGET" "PACKAGES" ${ARGN})
  if(NOT S_OUTPUT_DIR)
    set(S_OUTPUT_DIR ${NNO_STACK_OUT})
  endif()
  file(READ ${S_MANIFEST} json)
  string(JSON id GET ${json} id)
  string(JSON version GET ${json} version)
  set(dir ${S_OUTPUT_DIR}/${id}/${version})
  set(cmds COMMAND ${CMAKE_COMMAND} -E make_directory ${dir}/packages
           COMMAND ${CMAKE_COMMAND} -E copy_if_different ${S_MANIFEST} ${dir}/stack.json)
  set(deps)
  foreach(p ${S_PACKAGES})
    list(APPEND deps pkg_${p})
    list(APPEND cmds
      COMMAND ${CMAKE_COMMAND} -E make_directory ${dir}/packages/${p}
      COMMAND ${CMAKE_COMMAND} -E copy_if_different
              $<TARGET_PROPERTY:pkg_${p},NNO_PACKAGE_DIR>/package.json
              $<TARGET_FILE:pkg_${p}> ${dir}/packages/${p}/)
    get_target_property(m pkg_${p} NNO_PACKAGE_MIGRATIONS)
    if(m)
      list(APPEND cmds COMMAND ${CMAKE_COMMAND} -E copy_directory
           $<TARGET_PROPERTY:pkg_${p},NNO_PACKAGE_DIR>/migrations
           ${dir}/packages/${p}/migrations)
    endif()
    get_target_property(u pkg_${p} NNO_PACKAGE_UI)
    if(u)
      list(APPEND cmds
        COMMAND ${CMAKE_COMMAND} -E remove_directory ${dir}/packages/${p}/ui
        COMMAND ${CMAKE_COMMAND} -E copy_directory
                $<TARGET_PROPERTY:pkg_${p},NNO_PACKAGE_DIR>/ui
                ${dir}/packages/${p}/ui)
    endif()
  endforeach()
  if(S_TARGET)
    set(tgt ${S_TARGET})
  else()
    string(MAKE_C_IDENTIFIER "stack_${id}_${version}" tgt)
  endif()
  add_custom_target(${tgt} ALL ${cmds} DEPENDS ${deps} ${S_MANIFEST} VERBATIM)
  if(NOT S_NOINSTALL)
    install(DIRECTORY ${dir} DESTINATION ${CMAKE_INSTALL_DATADIR}/nno/stacks/${id})
    # Packing is reproducible, so packing again after any build is harmless.
    add_custom_target(pack_${tgt} ALL
      COMMAND ${CMAKE_COMMAND} -E make_directory ${NNO_OUT}/stacks
      COMMAND $<TARGET_FILE:nno> stack pack ${dir}
              -o ${NNO_OUT}/stacks/${id}-${version}.tar.gz
      VERBATIM)
    add_dependencies(pack_${tgt} ${tgt} nno)
  endif()
endfunction()
